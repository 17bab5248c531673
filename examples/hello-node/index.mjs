// The quick start's Node.js function (runtime nodejs20.x, handler index.handler).
export const handler = async (event) => {
  const name = event?.name || "world";
  console.log(`saying hello to ${name}`);
  return { message: `Hello, ${name}!` };
};

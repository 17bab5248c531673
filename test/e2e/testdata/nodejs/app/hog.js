// Holds on to memory until something gives.
const kept = [];
let calls = 0;
exports.handler = async (event) => {
  calls++;
  if (event.hog) {
    for (;;) kept.push(new Array(1 << 20).fill(calls));
  }
  return { calls };
};

// .cjs is CommonJS whatever package.json says.
module.exports.handler = async () => ({ cjs: typeof module });

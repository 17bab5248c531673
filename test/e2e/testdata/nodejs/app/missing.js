const pad = require('left-pad-that-is-not-there');
exports.handler = async () => pad('x', 3);

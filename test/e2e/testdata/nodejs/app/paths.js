// Where require() finds packages the function did not bundle.
exports.handler = async (event) => {
  try {
    return { resolved: require.resolve(event.module) };
  } catch (err) {
    return { error: err.code };
  }
};

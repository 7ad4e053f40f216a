'use strict';
// The generated napi-rs loader (binding.js, from `napi build --platform`) picks the .node
// file for this platform.
module.exports = require('../binding.js');

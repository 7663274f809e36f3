'use strict';
// The part of undici that oz's token client uses, as the entry of dist/vendor/undici.cjs:
// the keep-alive, proxy-aware agent and Dispatcher#request. undici's index also loads fetch,
// WebSocket, the cache and the mocks, which would double what a remote issue-token loads.
const Dispatcher = require('undici/lib/dispatcher/dispatcher');

Object.assign(Dispatcher.prototype, require('undici/lib/api'));

module.exports = {
  EnvHttpProxyAgent: require('undici/lib/dispatcher/env-http-proxy-agent'),
};

'use strict';
// The part of undici that oz's token client uses, as the entry of dist/vendor/undici.cjs:
// the keep-alive ProxyAgent and Dispatcher#request, loaded only when a proxy applies (a
// direct request goes over node:http). undici's index also loads fetch, WebSocket, the cache
// and the mocks, which would double what a proxied issue-token loads.
const Dispatcher = require('undici/lib/dispatcher/dispatcher');

Object.assign(Dispatcher.prototype, require('undici/lib/api'));

module.exports = {
  ProxyAgent: require('undici/lib/dispatcher/proxy-agent'),
  Client: require('undici/lib/dispatcher/client'),
  Pool: require('undici/lib/dispatcher/pool'),
};

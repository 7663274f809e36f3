// node:https loads TLS, which a plain-http token URL never needs: this module is imported
// only for https URLs (an import() of the built-in itself would not survive the CommonJS build).
export * as https from 'node:https';

/** Replaced at build time with package.json's version (tsup `define`). */
declare const __OZ_VERSION__: string;

import { describe, expect, it } from 'vitest';
import { displayUrl, issuerNotPublic, publicIssuerWarning } from '../../src/core/url.js';

describe('issuerNotPublic: the addresses AWS, GCP and Azure cannot fetch from', () => {
  it.each([
    ['https://localhost/oz', 'a local address (localhost) that they cannot reach'],
    ['https://app.localhost/oz', 'a local address (app.localhost) that they cannot reach'],
    ['https://[::1]/oz', 'a local address ([::1]) that they cannot reach'],
    ['https://[::]/oz', 'a local address ([::]) that they cannot reach'],
    ['https://0.0.0.0/oz', 'a local address (0.0.0.0) that they cannot reach'],
    ['https://127.0.0.1:8443/oz', 'a local address (127.0.0.1:8443) that they cannot reach'],
    ['https://10.1.2.3/oz', 'a local address (10.1.2.3) that they cannot reach'],
    ['https://192.168.1.1/oz', 'a local address (192.168.1.1) that they cannot reach'],
    ['https://172.16.0.1/oz', 'a local address (172.16.0.1) that they cannot reach'],
    ['https://172.24.0.1/oz', 'a local address (172.24.0.1) that they cannot reach'],
    ['https://172.31.0.1/oz', 'a local address (172.31.0.1) that they cannot reach'],
    ['https://169.254.169.254/oz', 'a local address (169.254.169.254) that they cannot reach'],
    ['http://oidc.example.com/oz', 'plain http'],
    ['not a url', 'not a URL'],
  ])('%s is %s', (issuer, why) => {
    expect(issuerNotPublic(issuer)).toBe(why);
  });

  it.each([
    // Public names that merely contain a private range's digits, or "localhost", elsewhere.
    'https://oidc.example.com/oz',
    'https://localhost.example.com/oz',
    'https://app10.example.com/oz',
    'https://v127.example.com/oz',
    'https://a192.168.example.com/oz',
    'https://a172.16.example.com/oz',
    'https://a169.254.example.com/oz',
    // Outside 172.16.0.0/12 and the other private ranges.
    'https://172.15.0.1/oz',
    'https://172.32.0.1/oz',
    'https://11.0.0.1/oz',
    'https://[2001:db8::1]/oz',
  ])('%s is public', (issuer) => {
    expect(issuerNotPublic(issuer)).toBeUndefined();
  });
});

describe('publicIssuerWarning', () => {
  it.each([
    ['https://10.0.0.5/oz', 'a local address (10.0.0.5) that they cannot reach'],
    ['not a url', 'not a URL'],
    ['http://oidc.example.com', 'plain http'],
  ])('%s', (issuer, why) => {
    expect(publicIssuerWarning(issuer, 'run oz issuer serve --public')).toBe(
      `oz: warning: the issuer ${issuer} is ${why}; AWS, GCP and Azure need a public https issuer to fetch its discovery document and JWKS, so they will refuse its tokens (run oz issuer serve --public)`,
    );
  });

  it('says nothing of a public https issuer', () => {
    expect(publicIssuerWarning('https://oidc.example.com/oz', 'x')).toBeUndefined();
  });
});

describe('displayUrl', () => {
  it.each([
    ['https://oidc.example.com/token?secret=1', 'https://oidc.example.com/token'],
    ['not a url', '"not a url"'],
  ])('%s shows as %s', (url, shown) => {
    expect(displayUrl(url)).toBe(shown);
  });
});

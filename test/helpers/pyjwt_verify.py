"""An independent relying party: verify a JWT the way AWS STS and GCP STS do, with PyJWT.

Reads the token on stdin; argv[1] is the expected audience. Fetches the issuer's discovery
document from the token's own `iss`, checks that it names the same issuer, fetches the JWKS it
points to, picks the key by `kid` and verifies signature, algorithm, audience and times.
Prints the verified claims as JSON, or `ERROR <class>: <message>` and exits 1.
"""
import json
import sys
import urllib.request

import jwt


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def main():
    token = sys.stdin.read()
    audience = sys.argv[1]
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        iss = unverified["iss"]
        discovery = fetch(iss.rstrip("/") + "/.well-known/openid-configuration")
        if discovery["issuer"] != iss:
            raise ValueError("discovery issuer %r != iss %r" % (discovery["issuer"], iss))
        key = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256", "ES256"],
            audience=audience,
            issuer=iss,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except Exception as e:  # the test reads the class and message
        print("ERROR %s: %s" % (type(e).__name__, e))
        sys.exit(1)
    print(json.dumps(claims))


main()

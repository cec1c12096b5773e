"""Checks Tollgate credit tokens offline, as an MCP server would: with PyJWT, against the keys `auth.keys`
published and the revocations `auth.revocations` listed, without asking the server about the token itself.

Usage: verify_credit_token.py JWKS_FILE REVOCATIONS_FILE TOKEN [TOKEN ...]
Prints one JSON line per token: {"ok": true, "claims": {...}} or {"ok": false, "error": "..."}.
"""

import json
import sys

import jwt


def check(token, keys, revoked):
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in keys.keys if k.key_id == kid), None)
        if key is None:
            return {"ok": False, "error": "unknown key"}
        claims = jwt.decode(
            token, key.key, algorithms=["EdDSA"], issuer="tollgate",
            options={"require": ["exp", "iat", "jti", "sub", "iss"]})
    except jwt.PyJWTError as error:
        return {"ok": False, "error": type(error).__name__}
    if claims["jti"] in revoked:
        return {"ok": False, "error": "revoked"}
    return {"ok": True, "claims": claims}


def main():
    with open(sys.argv[1]) as handle:
        keys = jwt.PyJWKSet.from_dict(json.load(handle))
    with open(sys.argv[2]) as handle:
        revoked = {entry["credentialId"] for entry in json.load(handle)["revocations"]}
    for token in sys.argv[3:]:
        print(json.dumps(check(token, keys, revoked)), flush=True)


if __name__ == "__main__":
    main()

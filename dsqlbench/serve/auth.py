"""Password authentication for ``dsqlbench serve --password``: SCRAM-SHA-256 (RFC 7677).

Role: the server side of the SASL exchange PostgreSQL clients (libpq, psycopg,
asyncpg) speak: AuthenticationSASL -> SASLInitialResponse -> SASLContinue ->
SASLResponse -> SASLFinal. Without ``--password`` loopback connections are trusted and
this module is not used.

Invariants: the password is never sent or logged; nonces and salts come from the
operating system's CSPRNG (they are not simulation state); any malformed step is a
protocol violation (08P01) and a wrong proof is 28P01, both fatal for the connection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from dsqlbench.serve import messages as M
from dsqlbench.serve.messages import ProtocolViolation

MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 4096
SASL, SASL_CONTINUE, SASL_FINAL = 10, 11, 12


def _hmac(key: bytes, text: bytes) -> bytes:
    return hmac.new(key, text, hashlib.sha256).digest()


def _attributes(text: str) -> dict:
    out = {}
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ProtocolViolation("malformed SCRAM message")
        out[part[0]] = part[2:]
    return out


async def _password_message(connection) -> bytes:
    kind, body = await connection.read_message()
    if kind != b"p":
        raise ProtocolViolation(f"expected SASL response, got message type {kind[0]}")
    return body


def verify_proof(password: str, salt: bytes, iterations: int, auth_message: bytes,
                 proof: bytes) -> bytes | None:
    """The server signature when ``proof`` is right, else None."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    stored_key = hashlib.sha256(client_key).digest()
    signature = _hmac(stored_key, auth_message)
    if len(proof) != len(signature):
        return None
    recovered = bytes(a ^ b for a, b in zip(proof, signature))
    if not hmac.compare_digest(hashlib.sha256(recovered).digest(), stored_key):
        return None
    return _hmac(_hmac(salted, b"Server Key"), auth_message)


async def scram_exchange(connection, user: str, password: str) -> bool:
    """Run the exchange on ``connection``; False (after a FATAL 28P01) on a wrong password."""
    connection.send(M.auth_request_msg(SASL, MECHANISM.encode() + b"\x00\x00"))
    await connection.flush()
    r = M.Reader(await _password_message(connection))
    if r.cstr() != MECHANISM:
        raise ProtocolViolation("client selected an invalid SASL authentication mechanism")
    length = r.int32()
    client_first = r.rest().decode("utf-8", "replace")
    if length != len(client_first.encode()) or not client_first.startswith(("n,", "y,")):
        raise ProtocolViolation("malformed SCRAM client-first-message")
    bare = client_first.split(",", 2)[2]
    client_nonce = _attributes(bare).get("r")
    if not client_nonce:
        raise ProtocolViolation("SCRAM nonce missing")
    salt = secrets.token_bytes(16)
    nonce = client_nonce + base64.b64encode(secrets.token_bytes(18)).decode()
    server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={ITERATIONS}"
    connection.send(M.auth_request_msg(SASL_CONTINUE, server_first.encode()))
    await connection.flush()
    client_final = (await _password_message(connection)).decode("utf-8", "replace")
    attrs = _attributes(client_final)
    if attrs.get("r") != nonce or "p" not in attrs:
        raise ProtocolViolation("invalid SCRAM client-final-message")
    without_proof = client_final[:client_final.rindex(",p=")]
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    server_signature = verify_proof(password, salt, ITERATIONS, auth_message,
                                    base64.b64decode(attrs["p"]))
    if server_signature is None:
        connection.send(M.error_msg("28P01", f'password authentication failed for user "{user}"',
                                    severity="FATAL"))
        return False
    connection.send(M.auth_request_msg(SASL_FINAL, b"v=" + base64.b64encode(server_signature)))
    return True

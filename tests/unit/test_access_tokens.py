"""Access tokens (auth/tokens.py) and the admission gate's use of them: every bad token refused, with its reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest

from videoroomd.auth.tokens import (EVERYONE, MAX_TOKEN_BYTES, Grants, TokenRefused, grants_from, mint, parse_ttl,
                                    verify)
from videoroomd.config import ConfigError
from videoroomd.config.load import parse
from videoroomd.rooms.admission import AdmissionGate, JoinRefused, check_entry

SECRET = "s" * 40
KEYS = {"app": SECRET}
NOW = 1_800_000_000.0


def token(**overrides) -> str:
    claims = {"iss": "app", "sub": "ann", "name": "Ann", "room": "class", "nbf": int(NOW) - 10, "exp": int(NOW) + 60,
              "grants": Grants().claims()}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")


def refused(text, *, room: str = "class", now: float = NOW, keys=KEYS) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        verify(text, keys, room=room, now=now)
    if isinstance(text, str) and len(text.split(".")[-1]) >= 20:  # a signature: never repeated in a reason
        assert text.split(".")[-1] not in caught.value.reason
    return caught.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_good_token_gives_its_identity_name_room_and_grants():
    checked = verify(token(grants={"publish": ["audio"], "chat": False, "moderate": True}), KEYS, room="class", now=NOW)
    assert (checked.identity, checked.name, checked.room, checked.key) == ("ann", "Ann", "class", "app")
    assert checked.grants == Grants(publish=frozenset({"audio"}), chat=False, moderate=True)


def test_minted_tokens_verify_and_carry_what_was_asked():
    text = mint("app", SECRET, room="class", identity="bob", name="Bob", now=NOW, ttl=3600,
                grants=Grants(moderate=True))
    checked = verify(text, KEYS, room="class", now=NOW + 3599)
    assert (checked.identity, checked.name, checked.grants.moderate, checked.expires) == ("bob", "Bob", True, NOW + 3600)
    assert refused(text, now=NOW + 3600).code == "token_expired"


@pytest.mark.parametrize("text", ["", "not-a-jwt", "a.b.c", "x" * 100, b64(b"{}") + ".." + "x"])
def test_malformed_tokens_are_refused(text):
    assert refused(text).code == "token_malformed"


def test_a_token_that_is_not_a_string_is_malformed():
    assert refused(None).code == "token_malformed"
    assert refused(["a"]).code == "token_malformed"


def test_alg_none_is_refused():
    text = jwt.encode({"iss": "app", "sub": "ann", "room": "class", "exp": int(NOW) + 60}, None, algorithm="none")
    problem = refused(text)
    assert problem.code == "token_algorithm" and "'none'" in problem.reason and "HS256" in problem.reason


def test_rs256_signed_with_the_shared_secret_as_a_public_key_is_refused():
    # The confusion attack: a header saying RS256, the signature an HMAC made with the secret
    # (which a server taking the secret as an RSA public key would accept).
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"iss": "app", "sub": "ann", "room": "class", "exp": int(NOW) + 60}).encode())
    signature = b64(hmac.new(SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest())
    assert refused(f"{header}.{claims}.{signature}").code == "token_algorithm"


def test_hs512_is_refused_too():
    text = jwt.encode({"iss": "app", "sub": "ann", "room": "class", "exp": int(NOW) + 60}, SECRET * 2, algorithm="HS512")
    assert refused(text).code == "token_algorithm"


def test_a_huge_token_is_refused_before_it_is_read():
    text = token(name="A" * MAX_TOKEN_BYTES)
    assert refused(text).code == "token_too_large"


def test_expired_by_one_second():
    assert verify(token(exp=int(NOW) + 1), KEYS, room="class", now=NOW)
    problem = refused(token(exp=int(NOW) - 1))
    assert problem.code == "token_expired" and "expired 1 s ago" in problem.reason


def test_not_yet_valid():
    problem = refused(token(nbf=int(NOW) + 30))
    assert problem.code == "token_not_yet_valid" and "30 s" in problem.reason


def test_a_token_without_expiry_is_refused():
    assert refused(token(exp=None)).code == "token_malformed"


def test_a_token_signed_by_a_removed_key_is_refused():
    text = token()
    assert verify(text, {"app": SECRET, "new": "n" * 40}, room="class", now=NOW)
    problem = refused(text, keys={"new": "n" * 40})
    assert problem.code == "token_unknown_key" and "'app'" in problem.reason


def test_a_token_naming_no_key_is_refused():
    assert refused(token(iss=None)).code == "token_unknown_key"


def test_a_token_for_another_room_is_refused():
    problem = refused(token(), room="other")
    assert problem.code == "token_wrong_room" and "'class'" in problem.reason and "'other'" in problem.reason


def test_a_token_with_a_wrong_signature_is_refused():
    head, body, _ = token().split(".")
    forged = jwt.encode({"iss": "app", "sub": "mallory", "room": "class", "exp": int(NOW) + 60}, "f" * 40,
                        algorithm="HS256")
    assert refused(forged).code == "token_bad_signature"
    assert refused(f"{head}.{body}.{b64(b'0' * 32)}").code == "token_bad_signature"


def test_claims_of_the_wrong_type_are_malformed():
    assert refused(token(sub="")).code == "token_malformed"
    assert refused(token(sub=5)).code == "token_malformed"
    assert refused(token(name=["x"])).code == "token_malformed"
    assert refused(token(grants={"chat": "yes"})).code == "token_malformed"
    assert refused(token(grants={"publish": ["audio", "smell"]})).code == "token_malformed"
    assert refused(token(grants=[1])).code == "token_malformed"


def test_grants_left_out_keep_the_defaults_of_someone_without_a_token():
    assert grants_from(None) == EVERYONE
    assert grants_from({"publish": False}) == Grants(publish=frozenset())
    assert grants_from({"publish": True, "moderate": True}) == Grants(moderate=True)
    assert not EVERYONE.moderate and not EVERYONE.record and not EVERYONE.admin


def test_no_refusal_reason_holds_the_token_or_the_secret():
    for text, keys, room in [(token(), {"app": "x" * 40}, "class"), (token(), {}, "class"), (token(), KEYS, "b")]:
        problem = refused(text, keys=keys, room=room)
        assert text not in problem.reason and SECRET not in problem.reason and text.split(".")[2] not in problem.reason


def test_ttls():
    assert [parse_ttl(t) for t in ("90", "90s", "15m", "1h", "2d")] == [90, 90, 900, 3600, 172800]
    for bad in ("", "1w", "-1h", "0"):
        with pytest.raises(ValueError):
            parse_ttl(bad)


# -- the admission gate -------------------------------------------------------------------------
CONFIG = f"""
[auth]
keys = {{ app = "{SECRET}" }}
[rooms.class]
access = "token"
[rooms.board]
password = "secret"
[rooms.open]
"""


def gate(tmp_path) -> AdmissionGate:
    return AdmissionGate(parse(CONFIG, "test", tmp_path), wall_clock=lambda: NOW)


def join_refused(g: AdmissionGate, room: str, *, password=None, token_text=None) -> JoinRefused:
    with pytest.raises(JoinRefused) as caught:
        g.admit(room, password, "192.0.2.1", running=None, now=0.0, token=token_text)
    return caught.value


def test_a_token_room_admits_a_token_and_nothing_else(tmp_path):
    g = gate(tmp_path)
    admitted = g.admit("class", None, "192.0.2.1", running=None, now=0.0, token=token())
    assert admitted.ticket.identity == "ann" and admitted.config.name == "class"
    problem = join_refused(g, "class")
    assert problem.code == "token_required" and "access token" in problem.reason
    assert join_refused(g, "class", password="secret").code == "token_required"


@pytest.mark.parametrize("bad, code", [
    (dict(exp=int(NOW) - 1), "token_expired"),
    (dict(nbf=int(NOW) + 60), "token_not_yet_valid"),
    (dict(room="board"), "token_wrong_room"),
    (dict(iss="gone"), "token_unknown_key"),
    (dict(grants={"join": False}), "no_join_grant"),
])
def test_the_gate_refuses_bad_tokens_with_their_reason(tmp_path, bad, code):
    problem = join_refused(gate(tmp_path), "class", token_text=token(**bad))
    assert problem.code == code and problem.reason


def test_a_token_stands_in_for_the_password_and_is_checked_in_an_open_room(tmp_path):
    g = gate(tmp_path)
    assert g.admit("board", None, "192.0.2.1", running=None, now=0.0, token=token(room="board")).ticket
    assert join_refused(g, "board", password="wrong").code == "wrong_password"
    assert g.admit("open", None, "192.0.2.1", running=None, now=0.0).ticket is None
    assert join_refused(g, "open", token_text=token()).code == "token_wrong_room"


def test_a_room_entered_without_its_ticket_is_refused(tmp_path):
    config = parse(CONFIG, "test", tmp_path).rooms["class"]
    with pytest.raises(JoinRefused) as caught:
        check_entry(config, None, peers=0, accepting=True, refusal=None)
    assert caught.value.code == "token_required"
    ticket = verify(token(), KEYS, room="class", now=NOW)
    check_entry(config, None, peers=0, accepting=True, refusal=None, ticket=ticket)


# -- the configuration --------------------------------------------------------------------------
def test_access_defaults_to_password_with_a_password_else_open(tmp_path):
    config = parse(CONFIG, "test", tmp_path)
    assert [config.rooms[n].access_mode for n in ("class", "board", "open")] == ["token", "password", "open"]


@pytest.mark.parametrize("text, where, words", [
    ('[rooms.a]\naccess = "token"\n', "rooms.a.access", "needs [auth] keys"),
    ('[rooms.a]\naccess = "password"\n', "rooms.a.access", "needs a password"),
    ('[rooms.a]\naccess = "closed"\n', "rooms.a.access", "expected one of"),
    ('[auth]\nkeys = { app = "short" }\n', "auth.keys", "at least 32 characters"),
    ('[auth]\nkeys = { "bad name" = "' + "x" * 40 + '" }\n', "auth.keys", "key name"),
    ('[auth]\nkeys = "x"\n', "auth.keys", "expected a table"),
])
def test_config_errors(tmp_path, text, where, words):
    with pytest.raises(ConfigError) as caught:
        parse(text, "test", tmp_path)
    assert any(p.key == where and words in p.message for p in caught.value.problems), caught.value
    assert "'short'" not in str(caught.value) and "x" * 40 not in str(caught.value)  # secrets never shown


def test_the_secrets_are_not_in_the_config_repr(tmp_path):
    config = parse(CONFIG, "test", tmp_path)
    assert SECRET not in repr(config) and SECRET not in repr(config.auth)

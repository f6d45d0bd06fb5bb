"""_redact: what is scrubbed from descriptions of errors raised underneath."""

from __future__ import annotations

import pytest

from etl_manifests._redact import describe, redact, redact_url, secret_values, strip_userinfo


def test_secret_values_finds_credentials_by_option_name_nested_and_in_urls() -> None:
    class Creds:
        token = "object-token-123"

    found = secret_values(
        {
            "key": "AKIDEXAMPLE123",
            "secret": "s3cr3t/with+slash",
            "token": "anon",  # a way to authenticate, not a credential
            "client_kwargs": {"endpoint_url": "http://user:hunter22@host:9000"},
            "config_kwargs": {"proxies": {"https": "http://u:proxypass1@proxy"}},
            "service": {"private_key": "-----BEGIN PRIVATE KEY-----\nABCDEFGHIJKLMNOPQRSTUV\n"},
            "creds": Creds(),
            "region_name": "us-east-1",
        }
    )
    assert {"AKIDEXAMPLE123", "s3cr3t/with+slash", "hunter22", "proxypass1"} <= found
    assert "ABCDEFGHIJKLMNOPQRSTUV" in found
    assert "object-token-123" in found
    assert "anon" not in found
    assert "us-east-1" not in found


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET https://oauth2.googleapis.com/tokeninfo?access_token=ya29.abc-DEF_1", "ya29."),
        ("url: /p?X-Amz-Security-Token=FQoGZX%2Bsess&X-Amz-Signature=abc", "FQoGZX"),
        ("connect http://admin:pa55word@db.internal:5432 failed", "pa55word"),
        ("Authorization: Bearer eyJhbGciOi.secret.part", "eyJhbGciOi"),
        ('{"private_key": "-----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n"}', "MIIEow"),
        ("key id AKIAIOSFODNN7EXAMPLE refused", "AKIAIOSFODNN7EXAMPLE"),
        ("token was ya29.a0AfH6SMC-whatever", "a0AfH6SMC"),
        ("authorization: SharedKey account:c2lnbmF0dXJlLW9mLXRoZQ==", "c2lnbmF0dXJl"),
        ("Authorization: SharedKeyLite account:c2lnbmF0dXJlLW9mLXRoZQ==", "c2lnbmF0dXJl"),
    ],
)
def test_redact_masks_credential_shapes(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redact_masks_given_secrets_also_when_url_encoded() -> None:
    secret = "pl/ant+ed=secret"
    text = f"raw {secret} quoted pl%2Fant%2Bed%3Dsecret plus pl%2Fant%2Bed%3Dsecret"
    assert "ant" not in redact(text, {secret})


def test_strip_userinfo_also_when_the_password_holds_a_slash() -> None:
    assert strip_userinfo("s3://KEY:se/cr+et@bucket/prefix") == "s3://bucket/prefix"
    assert strip_userinfo("gs://user@bucket/x") == "gs://bucket/x"
    assert strip_userinfo("s3://bucket/path@v2/x") == "s3://bucket/path@v2/x"
    assert strip_userinfo("/local/path") == "/local/path"
    assert redact_url("s3://KEY:se/cr+et@bucket/p") == "s3://***@bucket/p"


def test_describe_keeps_the_type_and_scrubs_and_shortens_the_text() -> None:
    error = ConnectionError("could not reach http://u:topsecret1@h/?token=abc " + "x" * 500)
    text = describe(error, {"abc"})
    assert text.startswith("ConnectionError: could not reach http://***@h/?token=***")
    assert "topsecret1" not in text
    assert len(text) <= 320
    assert describe(KeyError()) == "KeyError"


def test_redact_takes_secrets_that_are_not_valid_text() -> None:
    # A lone surrogate (from a JSON "\\udc80" escape) cannot be percent-encoded as UTF-8;
    # scrubbing must not fail on it, or describing the error would raise a new one.
    secret = "planted-secret\udc80value"
    assert "planted" not in redact(f"error: {secret}", {secret})
    assert "planted" not in describe(UnicodeEncodeError("utf-8", secret, 14, 15, "no"), {secret})

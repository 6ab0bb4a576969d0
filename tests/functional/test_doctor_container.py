"""``tierup doctor`` with ``[gateway] hosting = "container"``: the HTTPS listener's certificate,
checked against moto server's ACM (an imported certificate is issued at once; a requested one
waits for its DNS validation)."""

from __future__ import annotations

import datetime

import boto3
import pytest

from tests.support import make_config
from tierup.doctor.container_checks import check_certificate, covers

REGION = "us-east-1"


def self_signed(*names: str) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                   .sign(key, hashes.SHA256()))
    return (certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.fixture
def acm(moto_endpoint):
    return boto3.client("acm", endpoint_url=moto_endpoint, region_name=REGION)


def container_config(arn: str, domain: str | None = None):
    settings = {"certificate-arn": arn, **({"domain-name": domain} if domain else {})}
    return make_config({"gateway": {"hosting": "container", "container": settings}})


def test_an_issued_certificate_for_the_domain_is_ok(acm):
    body, key = self_signed("*.example.com", "example.com")
    arn = acm.import_certificate(Certificate=body, PrivateKey=key)["CertificateArn"]
    [finding] = check_certificate(container_config(arn, "llm.example.com"), acm, REGION)
    assert finding.status == "ok", finding


def test_a_certificate_that_does_not_cover_the_domain_is_named(acm):
    body, key = self_signed("api.other.org")
    arn = acm.import_certificate(Certificate=body, PrivateKey=key)["CertificateArn"]
    [finding] = check_certificate(container_config(arn, "llm.example.com"), acm, REGION)
    assert finding.status == "problem" and "api.other.org" in finding.detail and "llm.example.com" in finding.detail


def test_a_certificate_still_validating_or_missing_or_elsewhere_is_a_problem(acm):
    pending = acm.request_certificate(DomainName="llm.example.com", ValidationMethod="DNS")["CertificateArn"]
    status = acm.describe_certificate(CertificateArn=pending)["Certificate"]["Status"]
    if status != "ISSUED":  # moto issues requested certificates after a wait
        [finding] = check_certificate(container_config(pending, "llm.example.com"), acm, REGION)
        assert finding.status == "problem" and status in finding.detail and "validation" in finding.fix
    missing = pending.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    [finding] = check_certificate(container_config(missing), acm, REGION)
    assert finding.status == "problem" and "does not exist" in finding.detail
    elsewhere = missing.replace(f":{REGION}:", ":eu-west-1:")
    [finding] = check_certificate(container_config(elsewhere), acm, REGION)
    assert finding.status == "problem" and "eu-west-1" in finding.detail


@pytest.mark.parametrize("pattern, name, covered", [
    ("llm.example.com", "llm.example.com", True),
    ("LLM.example.com", "llm.example.com.", True),
    ("*.example.com", "llm.example.com", True),
    ("*.example.com", "a.llm.example.com", False),
    ("*.example.com", "example.com", False),
    ("example.com", "llm.example.com", False),
])
def test_certificate_names_cover_as_tls_does(pattern, name, covered):
    assert covers(pattern, name) is covered

"""``tierup doctor`` for ``[gateway] hosting = "container"``: the HTTPS listener's certificate.

A certificate that is not issued, lives in another region, or does not cover ``domain-name``
fails where nothing offline can see it: the deploy stops at the listener (not issued, wrong
region), or every client's TLS handshake fails (a name the certificate does not cover).
"""

from __future__ import annotations

from functions.core.config import TierupConfig

from .findings import Finding, error_code, ok, problem

CHECK = "gateway certificate"


def covers(pattern: str, name: str) -> bool:
    """Whether a certificate name (``*.example.com`` covers one label) covers ``name``."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def check_certificate(config: TierupConfig, acm, region: str) -> list[Finding]:
    settings = config.gateway.container
    arn = settings.certificate_arn
    if arn is None:  # the config refuses this; kept for a config built in code
        return [problem(CHECK, "no [gateway.container] certificate-arn", "request one in ACM and set it")]
    arn_region = arn.split(":")[3]
    if arn_region != region:
        return [problem(CHECK, f"{arn} is in {arn_region}; the load balancer is in {region}",
                        f"request (or import) the certificate in ACM in {region}")]
    try:
        certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return [problem(CHECK, f"{arn} does not exist", "request it in ACM, or fix certificate-arn")]
        raise
    status = certificate.get("Status")
    if status != "ISSUED":
        return [problem(CHECK, f"{arn} is {status}, not ISSUED",
                        "finish its validation (the CNAME record ACM asks for) before cdk deploy")]
    names = [certificate.get("DomainName", ""), *certificate.get("SubjectAlternativeNames", [])]
    if settings.domain_name and not any(covers(pattern, settings.domain_name) for pattern in names):
        return [problem(CHECK, f"{arn} covers {', '.join(sorted(set(names)))}, not {settings.domain_name}",
                        "use a certificate for domain-name, or change domain-name")]
    where = settings.domain_name or "the names it covers (set domain-name)"
    return [ok(CHECK, f"{arn} is issued for {where}")]

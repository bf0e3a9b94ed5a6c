"""For each PEM file given, every certificate's x509-certificate-exporter labels and times,
computed with pyca/cryptography (independent of kpki's x509-parser): serial in decimal, issuer_*
and subject_* from Go's pkix.Name rules (first C, STREET as _ST, L, O, OU value; the last CN;
only non-empty values), notBefore/notAfter as Unix seconds. Prints JSON {path: [cert, ...]}."""
import json
import sys

from cryptography import x509
from cryptography.x509.oid import NameOID

LISTS = [
    (NameOID.COUNTRY_NAME, "C"),
    (NameOID.STREET_ADDRESS, "ST"),
    (NameOID.LOCALITY_NAME, "L"),
    (NameOID.ORGANIZATION_NAME, "O"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
]


def name_labels(name, prefix):
    labels = {}
    for oid, short in LISTS:
        values = [a.value for a in name if a.oid == oid]
        if values and values[0]:
            labels[f"{prefix}_{short}"] = values[0]
    cns = [a.value for a in name if a.oid == NameOID.COMMON_NAME]
    if cns and cns[-1]:
        labels[f"{prefix}_CN"] = cns[-1]
    return labels


out = {}
for path in sys.argv[1:]:
    certs = x509.load_pem_x509_certificates(open(path, "rb").read())
    rows = []
    for c in certs:
        labels = {"serial_number": str(c.serial_number)}
        labels.update(name_labels(c.issuer, "issuer"))
        labels.update(name_labels(c.subject, "subject"))
        rows.append({
            "labels": labels,
            "not_before": int(c.not_valid_before_utc.timestamp()),
            "not_after": int(c.not_valid_after_utc.timestamp()),
        })
    out[path] = rows
json.dump(out, sys.stdout, indent=1, sort_keys=True)

"""Parses a Prometheus text exposition with the official Python client's parser (independent of
kpki) and prints it as JSON: [{name, type, help, samples: [{name, labels, value}]}]."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1], encoding="utf-8").read()
out = []
for fam in text_string_to_metric_families(text):
    out.append({
        "name": fam.name,
        "type": fam.type,
        "help": fam.documentation,
        "samples": [
            {"name": s.name, "labels": dict(s.labels), "value": s.value, "timestamp": s.timestamp}
            for s in fam.samples
        ],
    })
json.dump(out, sys.stdout, indent=1, sort_keys=True)

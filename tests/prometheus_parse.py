# A metrics file on stdin, as the Prometheus project's own Python client
# parses it (Debian's python3-prometheus-client): one JSON line
# [metric, labels, value] per sample. Fails on anything it refuses.
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    assert family.type == "gauge", family
    for s in family.samples:
        print(json.dumps([s.name, s.labels, s.value]))

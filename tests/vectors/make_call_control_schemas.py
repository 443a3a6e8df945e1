"""Extract the Call Control request schemas from Telnyx's OpenAPI spec into
tests/vectors/call_control_schemas.json (the six actions' request bodies and every schema
they reference, byte-for-byte as in the spec).

This copy (team-telnyx/openapi 12de4dd, 2026-07-16, see ../shared/specs/SOURCE.md) is older
than the enums the client knows (telnyx_audio.callcontrol.ENUM_SOURCE: the Python SDK of
2026-08-21, which adds the transcription engines Humain and Reson8). The tests check that our
enums hold every value of this copy, and that bodies with the newer engines are refused by it.
To refresh, run this script on a newer spec3.yml and update those tests' expectations.

Run from the repository root with the spec beside it:
    python tests/vectors/make_call_control_schemas.py ../shared/specs/telnyx-openapi-spec3.yml
"""

import json
import sys
from pathlib import Path

import yaml

ACTIONS = ["streaming_start", "streaming_stop", "fork_start", "fork_stop", "transcription_start", "transcription_stop"]


def refs(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def main(spec_path: str) -> None:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(Path(spec_path).read_text(), Loader=loader)
    schemas = spec["components"]["schemas"]
    requests = {}
    for action in ACTIONS:
        body = spec["paths"][f"/calls/{{call_control_id}}/actions/{action}"]["post"]["requestBody"]
        requests[action] = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    wanted, todo = set(), list(requests.values()) + ["call-control_Errors", "CallControlCommandResult"]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            found = set()
            refs(schemas[name], found)
            todo += sorted(found)
    out = {"source": f"{Path(spec_path).name}: components.schemas (see make_call_control_schemas.py)",
           "requests": requests, "schemas": {name: schemas[name] for name in sorted(wanted)}}
    target = Path(__file__).with_name("call_control_schemas.json")
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target}: {len(wanted)} schemas")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/specs/telnyx-openapi-spec3.yml")

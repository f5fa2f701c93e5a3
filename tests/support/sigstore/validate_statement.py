"""Validate the in-toto statement inside a sigstore bundle with the
in-toto attestation framework's own Python bindings (in-toto-attestation,
installed by install.sh): the Statement v1 wrapper's validate(), and for
SLSA provenance v1 a strict parse into its protobuf message plus the fields
the SLSA v1 spec marks REQUIRED. Usage: validate_statement.py BUNDLE.json.
Prints the predicate type and exits 0, or prints the problem and exits 1."""

import base64
import json
import sys

from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement

SLSA_V1 = "https://slsa.dev/provenance/v1"


def main(path):
    with open(path, encoding="utf-8") as f:
        bundle = json.load(f)
    envelope = bundle["dsseEnvelope"]
    if envelope["payloadType"] != "application/vnd.in-toto+json":
        raise ValueError("payload type " + envelope["payloadType"])
    text = base64.b64decode(envelope["payload"]).decode("utf-8")
    proto = json_format.Parse(text, statement_pb2.Statement())
    Statement.copy_from_pb(proto).validate()
    predicate_type = proto.predicate_type
    if predicate_type == SLSA_V1:
        predicate = json.loads(text)["predicate"]
        provenance = json_format.ParseDict(predicate, provenance_pb2.Provenance())
        definition = provenance.build_definition
        if not definition.build_type:
            raise ValueError("buildDefinition.buildType is required")
        if not definition.HasField("external_parameters"):
            raise ValueError("buildDefinition.externalParameters is required")
        if not provenance.run_details.builder.id:
            raise ValueError("runDetails.builder.id is required")
    print(predicate_type)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception as e:  # every failure is a rejection, with its reason
        print(f"invalid: {type(e).__name__}: {e}")
        sys.exit(1)

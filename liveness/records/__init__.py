"""Signed certification records: canonical JSON, Ed25519 keys, the store, verification.

See docs/records.md for the record format, the canonical form, key rotation and verification.
"""

from liveness.records.canonical import canonical_json
from liveness.records.keys import PublicKey, SigningKeys, load_jwks
from liveness.records.limiter import AttemptLimiter, Lock
from liveness.records.merkle import InclusionProof, TreeHead
from liveness.records.record import CertRecord
from liveness.records.store import RecordStore
from liveness.records.verify import BrokenLink, VerifyReport, verify_records

__all__ = [
    "AttemptLimiter",
    "BrokenLink",
    "CertRecord",
    "InclusionProof",
    "Lock",
    "PublicKey",
    "RecordStore",
    "SigningKeys",
    "TreeHead",
    "VerifyReport",
    "canonical_json",
    "load_jwks",
    "verify_records",
]

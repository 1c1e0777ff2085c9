"""Pure, I/O-free Matrix protocol logic.

Modules (each documents its public API):

* ``canonical_json`` - canonical JSON encoding and a strict decoder (spec appendix).
* ``unpadded_base64`` - unpadded base64, standard and URL-safe.
* ``room_versions``  - room versions 1-12 as one table of data.
* ``pdu``            - the ``PDU`` wrapper around an event's JSON.
* ``events``         - redaction, content/reference hashes, event IDs, incoming checks.
* ``signing``/``keys`` - ed25519 keys, Synapse's key file format, signing JSON.
* ``auth``           - event authorization rules for every room version.
* ``power_levels``   - reading power levels (creators, defaults, per-version parsing).
* ``state_res``      - state resolution v1 and v2 (with the v12 changes).
* ``push_rules``     - server-default push rules and their evaluator.
* ``dag``            - forward extremities, auth chains and auth-chain differences.
"""

"""oras-py (PyPI `oras`) against a registry on plain HTTP: the independent artifact client of
tests/it/serve_oras.rs. Pushes an artifact monolithically and a second one in chunks, pulls the
first back, and attaches a referrer to it through `subject`. Prints what the Rust test checks
as one JSON object; checks nothing itself.

usage: push_pull.py HOST:PORT  (run in a directory holding payload.bin, big.bin, config.json)
"""

import json
import sys

import oras.oci
import oras.provider
import requests

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def main():
    addr = sys.argv[1]
    reg = oras.provider.Registry(hostname=addr, insecure=True)
    out = {}
    # artifactType: oras-py has no flag for the manifest's own field; the config's media type
    # is the artifact type a registry's referrers API reports when the field is absent.
    resp = reg.push(
        f"{addr}/lab/artifact:v1",
        files=["payload.bin:application/vnd.airlock.test.payload"],
        manifest_config="config.json:application/vnd.airlock.test.config+json",
        manifest_annotations={"org.opencontainers.image.title": "airlock oras test"},
        quiet=True,
    )
    out["pushed"] = resp.headers.get("Docker-Content-Digest")
    resp = reg.push(
        f"{addr}/lab/artifact:chunked",
        files=["big.bin:application/vnd.airlock.test.payload"],
        do_chunked=True,
        chunk_size=64 * 1024,
        quiet=True,
    )
    out["chunked"] = resp.headers.get("Docker-Content-Digest")
    out["pulled"] = reg.pull(f"{addr}/lab/artifact:v1", outdir="pulled")
    out["pulled_chunked"] = reg.pull(f"{addr}/lab/artifact:chunked", outdir="pulled-chunked")
    out["tags"] = reg.get_tags(f"{addr}/lab/artifact")

    # The subject is the manifest as the registry holds it: its digest is over those bytes,
    # which oras.oci.Subject.from_manifest (re-serialising a dict) would not reproduce.
    raw = requests.get(
        f"http://{addr}/v2/lab/artifact/manifests/v1", headers={"Accept": MANIFEST}, timeout=20
    )
    raw.raise_for_status()
    subject = oras.oci.Subject(
        mediaType=raw.headers["Content-Type"],
        digest=raw.headers["Docker-Content-Digest"],
        size=len(raw.content),
    )
    out["subject"] = subject.digest
    resp = reg.push(
        f"{addr}/lab/artifact:signature",
        files=["signature.txt:application/vnd.airlock.test.signature"],
        manifest_config="sig-config.json:application/vnd.airlock.test.signature+json",
        subject=subject,
        quiet=True,
    )
    out["referrer"] = resp.headers.get("Docker-Content-Digest")
    out["oci_subject"] = resp.headers.get("OCI-Subject")
    print(json.dumps(out))


if __name__ == "__main__":
    main()

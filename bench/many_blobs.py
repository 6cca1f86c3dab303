#!/usr/bin/env python3
"""Small distinct blobs for the store-size workload, laid out for nginx, and their URLs.

    many_blobs.py DIR COUNT SIZE BASE_URL URLS_FILE

Writes COUNT blobs of SIZE bytes each (deterministic: blob i is the SHA-256 of "pantry
store-size i" repeated) to DIR/HH/REST, where HH REST is the hex of the blob's own SHA-256 split
after two characters (nginx serves /v2/many/blobs/sha256:HHREST from there), and one URL per
line to URLS_FILE (BASE_URL/v2/many/blobs/sha256:HEX). Blobs already there are kept, so a
repeated run with the same COUNT writes nothing new.
"""
import hashlib
import os
import sys


def main():
    root, count, size, base, urls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    made = set()
    with open(urls, "w") as out:
        for i in range(count):
            seed = hashlib.sha256(f"pantry store-size {i}".encode()).digest()
            body = (seed * (size // len(seed) + 1))[:size]
            hexd = hashlib.sha256(body).hexdigest()
            sub = os.path.join(root, hexd[:2])
            if hexd[:2] not in made:
                os.makedirs(sub, exist_ok=True)
                made.add(hexd[:2])
            path = os.path.join(sub, hexd[2:])
            if not os.path.exists(path):
                with open(path, "wb") as f:
                    f.write(body)
            out.write(f"{base}/v2/many/blobs/sha256:{hexd}\n")


if __name__ == "__main__":
    main()

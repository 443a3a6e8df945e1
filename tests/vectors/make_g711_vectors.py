"""Write tests/vectors/g711.json: ITU-T G.711 known answers from an independent coder.

The oracle is CPython's audioop (the Sun reference G.711 coder, in C). Run with Python 3.11
or 3.12, where audioop still exists:

    python tests/vectors/make_g711_vectors.py

The file records, for all 256 codes, the linear value of each (mu-law and A-law), and for a
fixed set of linear inputs (every 64th int16, plus the segment edges), their codes.
"""

import audioop
import json
from pathlib import Path

import numpy as np

codes = bytes(range(256))
edges = [0, 1, -1, 2, -2, 31, 32, 33, 8158, 8159, 8160, 32767, -32768, -32767, 4095, 4096, -4096]
linear = sorted(set(range(-32768, 32768, 64)) | set(edges))
pcm = np.array(linear, dtype=np.int16).tobytes()
vectors = {
    "source": "CPython 3.11 audioop (Sun reference G.711), see make_g711_vectors.py",
    "ulaw_decode": list(np.frombuffer(audioop.ulaw2lin(codes, 2), np.int16).tolist()),
    "alaw_decode": list(np.frombuffer(audioop.alaw2lin(codes, 2), np.int16).tolist()),
    "linear": linear,
    "ulaw_encode": list(audioop.lin2ulaw(pcm, 2)),
    "alaw_encode": list(audioop.lin2alaw(pcm, 2)),
}
out = Path(__file__).with_name("g711.json")
out.write_text(json.dumps(vectors, separators=(",", ":")) + "\n")
print(f"wrote {out}")

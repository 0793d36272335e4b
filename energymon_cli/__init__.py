"""The `energymon` command: the floor above every package, gathering each one's subcommands.

Importing it sets up the process before any package is loaded: `requests` loads a character-set
detector (chardet or charset_normalizer) when it is first imported, only to guess the encoding
of a text answer that declares none. Nothing here is ever guessed (InfluxDB and Grafana answer
JSON, MessagePack or UTF-8 text, which is decoded as such), and the detector is the largest
library either service would load (docs/BENCHMARKS.md); without one, requests reads such text
as UTF-8.
"""

import sys
import warnings

DETECTORS = ("chardet", "charset_normalizer")

for _detector in DETECTORS:
    # A None entry makes `import` of the name fail, which requests handles as "not installed".
    sys.modules.setdefault(_detector, None)  # type: ignore[arg-type]
warnings.filterwarnings("ignore", message="Unable to find acceptable character detection")

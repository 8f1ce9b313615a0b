"""
The embeddable player's browser side: ``static/`` (its script, styles and
the script-tag loader) and ``vendor/`` (hls.js, which the build copies from
the npm registry, never committed). The pages themselves are made by
:mod:`gocast.resources.embed`.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
VENDOR = os.path.join(HERE, "vendor")

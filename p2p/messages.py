"""P2P messages and their framing: the pure codec lives in core/p2pwire.py, since the light
client (which may not import p2p/) speaks it too to sync headers from full nodes. This module
keeps p2p's public names where p2p code and tests expect them."""
from core.p2pwire import *  # noqa: F401,F403
from core.p2pwire import FRAME_HEADER, MAX_FRAME, MESSAGES, decode_frame, decode_frame_header, \
    decode_payload, encode_frame  # noqa: F401

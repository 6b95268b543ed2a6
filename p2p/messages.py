"""P2P messages and their framing: the pure codec lives in core/p2pwire.py, since the light
client (which may not import p2p/) speaks it too to sync headers from full nodes. This module
keeps p2p's public names where p2p code and tests expect them."""
from core.p2pwire import (Addr, BlockMsg, DecodeError, EphKey, FRAME_HEADER, GetAddr, GetData, GetHeaders,
    HEADER_SIZE, Headers, INV_BLOCK, INV_EPHKEY, INV_TX, INV_TYPES, Inv, MAX_ADDR, MAX_BLOCK_DECODE,
    MAX_EPHKEY, MAX_FRAME, MAX_HEADERS, MAX_HEADER_WIRE, MAX_INV, MAX_LOCATOR, MAX_TX_DECODE, MAX_USER_AGENT,
    MESSAGES, Message, NODE_NETWORK, NotFound, PROTOCOL_VERSION, Ping, Pong, TxMsg, Verack, Version,
    decode_frame, decode_frame_header, decode_payload, encode_frame)

__all__ = ['Addr', 'BlockMsg', 'DecodeError', 'EphKey', 'FRAME_HEADER', 'GetAddr', 'GetData', 'GetHeaders',
           'HEADER_SIZE', 'Headers', 'INV_BLOCK', 'INV_EPHKEY', 'INV_TX', 'INV_TYPES', 'Inv', 'MAX_ADDR',
           'MAX_BLOCK_DECODE', 'MAX_EPHKEY', 'MAX_FRAME', 'MAX_HEADERS', 'MAX_HEADER_WIRE', 'MAX_INV',
           'MAX_LOCATOR', 'MAX_TX_DECODE', 'MAX_USER_AGENT', 'MESSAGES', 'Message', 'NODE_NETWORK', 'NotFound',
           'PROTOCOL_VERSION', 'Ping', 'Pong', 'TxMsg', 'Verack', 'Version', 'decode_frame', 'decode_frame_header',
           'decode_payload', 'encode_frame']

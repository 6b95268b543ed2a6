"""`dotbit-connect`: connections that use what .bit names publish (the core paper's second
proposal). It resolves a name's addresses and TLSA rows through the light client's verified
path (signature, proofs against proof-of-work-checked headers) and accepts a server's
certificate only if it matches one of those rows (DANE-EE, or DANE-TA with a chain and name
check per RFC 7671), never because the system CA store vouches for it.

Imports core/ and light/ only; nothing in the project imports it.
"""

"""The resolver: `bit.` over DNS (with online DNSSEC) and a signed HTTP API, from chain names.
It reads the chain and never writes chain state; what it reads is handed to it by the node's
composition root (node/service.py, node/compose.py).

  identity.py     the one Ed25519 key: envelope signer and bit. DNSKEY (alg 15), anchor lines
  dns_answer.py   one query packet -> one response packet (all DNS logic, fuzzable in-process)
  dnssec.py       online RRSIGs (cached), NSEC white lies
  dns_server.py   UDP (lean batch path) and TCP sockets;  ratelimit.py  UDP response rate limit
  http_api.py     /v1 endpoints over injected ChainReads; http_server.py the lean HTTP/1.1 under them
  dane.py         names outside bit.: TLSA/A/AAAA/CNAME from DNSSEC-signed zone files,
                  checked against trust anchors (secure and insecure served, marked; bogus never)
  ekeys.py        off-chain MinimaLT ephemeral-key updates (checked, stored, listened to)
  ca/             the CA source: issuing CA, owner-proof issuance, revocation, CRL/OCSP, endpoints
  zone/           the signed bit. zone: building, AXFR/IXFR, TSIG, NOTIFY
  service.py      Resolver: wires it all to the chain and invalidates caches on events
The pure parts (record selection, sources policy, envelopes) are in core/; the light client
`dotbit-resolve` is in light/.
"""

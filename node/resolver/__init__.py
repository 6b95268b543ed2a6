"""The resolver: `bit.` over DNS (with online DNSSEC) and a signed HTTP API, from chain names.
It reads the chain and never writes chain state; what it reads is handed to it by the node's
composition root (node/service.py, node/compose.py).

  identity.py     the one Ed25519 key: envelope signer and bit. DNSKEY (alg 15), anchor lines
  ca/             the CA source: issuing CA, owner-proof issuance, revocation, CRL/OCSP
  dns_answer.py   one query packet -> one response packet (all DNS logic, fuzzable in-process)
  dnssec.py       online RRSIGs (cached), NSEC white lies
  fastdeny.py     the random-name flood's NXDOMAIN (LABEL.bit.) rendered straight to wire
  dns_server.py   UDP (lean batch path) and TCP sockets (the TCP loop is light/dnstcp.py)
  ratelimit.py    response rate limiting per client network, slip to TC=1
  sharedlimit.py  the same limit over one shared-memory table for DNS worker processes
  worker_pool.py  --dns-workers N: the node starts, feeds, watches and stops its DNS workers
  worker.py       one DNS worker process (Responder + DNSServer, and the HTTP API, on the shared ports)
  worker_link.py  the msgpack frames between the node and its workers
  http_api.py     /v1 endpoints over injected ChainReads; http_server.py the lean HTTP/1.1 under them
  http_worker.py  the same API in a DNS worker, over one-tip snapshots from the node
  connshare.py    the HTTP per-source connection caps counted across workers (shared memory)
  dane.py         names outside bit.: TLSA/A/AAAA/CNAME from DNSSEC-signed zone files,
                  checked against trust anchors (secure and insecure served, marked; bogus never)
  ekeys.py        off-chain MinimaLT ephemeral-key updates (checked, stored, listened to)
  zone/           the signed bit. zone: export, AXFR, NOTIFY, TSIG
  service.py      Resolver: wires it all to the chain and invalidates caches on events

What the resolver shares with its clients lives in core/: the read-only name view and record
selection (core/records.py), record sources and policy (core/sources.py), envelopes
(core/envelope.py), CA owner proofs and leaf evidence (core/ca_proof.py, core/ca_evidence.py),
DANE evidence pieces (core/dane_evidence.py). The light client is light/.
"""

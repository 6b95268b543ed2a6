"""dotbit-resolve: the light client, which distrusts the resolver it asks (DESIGN §4-5). It
keeps its own proof-of-work-checked header chain and accepts an answer only when the name-tree
proofs in it, checked against that chain, rebuild exactly the records the resolver gave.
Imports only core/ and itself; runs with no LevelDB installed.

  cli         the `dotbit-resolve` command: one question, or run the stub
  output      what the command prints: answers as text or JSON, notes about sources
  peer        a full node as a header source over p2p (handshake, getheaders)
  client      LightClient: talks to resolvers over the signed HTTP API, syncs headers, verifies
  verify      header checks (extend_headers) and answer checks (open_answer, verify_answer)
  verdict     what the checks conclude: VerifyError, Verified
  altrecords  TLSA records from the CA or DANE sources, and names outside bit.
  headers     the header store (a flat file of verified headers) and its sync
  dane        DNSSEC validation of DANE answers from the client's own trust anchors
  stub        a loopback DNS stub (UDP, TCP) answering .bit with verified data only
  dnstcp      the DNS-over-TCP connection loop the stub and the node's resolver share
"""

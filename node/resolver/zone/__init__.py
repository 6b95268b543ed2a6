"""The signed `bit.` zone and what serves it to secondaries.

  projection.py  the zone kept in the store, changed in each block's batch (serial, IXFR steps)
  patch.py       one serial's change: names re-rendered, NSEC chain patched, signatures refreshed
  rebuild.py     the whole zone built from the name index (first enable, stale zone, reindex)
  lanes.py       the build's rendering and signing spread over worker processes, in order
  refresh.py     the timer re-signing the oldest signatures while no block comes
  render.py      one d/ name's owners, signed; signed.py what the zone holds of a name
  rrwire.py      RRs as wire bytes, canonical owner keys, RRSIGs made with PyNaCl
  basis.py       names at a height, serial arithmetic, signature window
  store.py       the zone's LevelDB keys; reader.py one version read from a snapshot
  transfer.py    AXFR and IXFR over TCP to allowed addresses, TSIG-checked, streamed
  notify.py      NOTIFY to configured secondaries after each block
  tsig.py        TSIG keys (RFC 8945): key files, keyrings, signing and checking
"""

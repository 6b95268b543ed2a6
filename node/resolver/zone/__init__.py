"""The signed `bit.` zone and what serves it to secondaries.

  signed.py    the whole zone built and signed from the name index (export, AXFR source)
  transfer.py  AXFR over TCP (IXFR answered in AXFR form) to allowed addresses, TSIG-checked
  notify.py    NOTIFY to configured secondaries after each block
  tsig.py      TSIG keys (RFC 8945): key files, keyrings, signing and checking
"""

"""Names, pure (DESIGN §3-4): the rules of name operations, the name tree that commits to
every name's record, and what a d/ value means as DNS records. Imports only core/.

  rules         verdict on a transaction's name operation; NameRecord, expiry, burn
  ops           building the outputs of name operations (name_new, firstupdate, update)
  tree          the name tree: a Merkle radix tree over SHA-256(name), reads and updates
  proof         name-tree proofs and their verifier (light clients import it alone)
  dvalue        a d/ value -> the DNS records of its domain (IFA-0001, as ncdns reads it)
  dvalue_tree   the merged tree of a d/ value: map children, import and delegate resolved
  dvalue_items  parsers for the single items of a d/ value (ip, ns, tls, srv, txt, ...)
  dnsname       DNS name syntax inside d/ values: labels, relative names, qualification
"""

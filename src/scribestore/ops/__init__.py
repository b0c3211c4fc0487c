"""Store-wide operations: the manifest registry, verify, fsck, gc and transfer.

They work on whole stores (every object, every pack, every manifest that uses
a store) and sit between the API above and the engine below.
"""

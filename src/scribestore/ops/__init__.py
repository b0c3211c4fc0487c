"""Store-wide operations: verify, fsck and garbage collection.

They work on whole stores (every object, every pack, every manifest that uses
a store) and sit between the API above and the engine below.
"""

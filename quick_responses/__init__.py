"""quick_responses: templated answers to small talk, matched in about a millisecond.

A library that knows nothing of the service. Its matcher arrives with the issue
"quick_responses: templated answers in a millisecond"; until then the service's responder
chain has no quick tier.
"""

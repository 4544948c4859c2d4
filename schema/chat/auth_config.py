"""Who the chat app trusts: itself (Convex's ``auth.config.ts``).

``@convex-dev/auth`` sets the app up to trust the tokens it signs: an OIDC
provider whose domain is the deployment's own ``CONVEX_SITE_URL`` and whose
application ID is ``convex``. one_store checks such tokens with the ``JWKS``
environment variable, without fetching ``/.well-known/jwks.json`` from itself.
"""

import os

providers = [
    {
        "domain": os.environ.get("CONVEX_SITE_URL", "http://127.0.0.1:3211"),
        "applicationID": "convex",
    }
]

"""Who is calling and what they may do: API tokens, OIDC JWTs, roles and the role matrix.

Plain modules, no Flask: the API's `before_request` and the web UI's sign-in call the same
`authenticate.identify` and get the same `Identity`.
"""

"""The cxops gateway: API keys per tenant and role, rate and size limits, the audit log,
streaming proxying to the services with a signed internal token, and one OpenAPI for the suite.
"""

"""Config, naming, checks and tools shared by the CDK app, the admin CLI and the tests."""

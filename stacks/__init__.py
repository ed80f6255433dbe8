"""CDK stacks of the platform; ``stacks.platform.build_platform`` composes them into stages."""

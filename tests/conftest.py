pytest_plugins = ["omni.testing.fixtures"]

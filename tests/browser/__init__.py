"""Tests in a real browser: JupyterLab in Debian's headless Chromium."""

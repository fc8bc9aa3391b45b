#!/usr/bin/env python3
"""Start the Sealchat server: python run_server.py --port 8888 (see --help)."""
from chat.app import main

if __name__ == "__main__":
    main()

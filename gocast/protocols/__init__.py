"""
Wire protocols: the front door that routes each connection on the shared
port, source ingestion (SOURCE/PUT), and ICY listeners.
"""

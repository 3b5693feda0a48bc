"""The contract documented: who sends and receives what (contract_map), as AsyncAPI."""

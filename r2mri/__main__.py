from .cli import entry_point

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    entry_point()

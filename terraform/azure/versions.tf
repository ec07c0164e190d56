terraform {
  required_version = ">= 1.5"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.x: containers are created through Azure Resource Manager
      # (storage_account_id), so the account needs no shared key for it.
      version = "~> 4.0"
    }
  }
}

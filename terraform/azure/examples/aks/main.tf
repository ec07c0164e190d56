# A Stratus storage account and container, a managed identity with access
# to it, and the federated credential for the registry's pods on AKS.
#
#   cd terraform/azure/examples/aks && terraform init
#   terraform apply -var storage_account_name=acmestratusprod \
#     -var aks_oidc_issuer_url=$(az aks show -g acme -n prod --query oidcIssuerProfile.issuerUrl -o tsv)
#   terraform output -raw stratus_config

terraform {
  required_version = ">= 1.5"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
  }
}

variable "location" {
  description = "Azure region; the cluster's region."
  type        = string
  default     = "westeurope"
}

variable "storage_account_name" {
  description = "Globally unique storage account name (3-24 lower-case letters and digits)."
  type        = string
}

variable "aks_oidc_issuer_url" {
  description = "The AKS cluster's OIDC issuer URL."
  type        = string
}

provider "azurerm" {
  features {}
  # The account allows no shared keys, so the provider uses Entra ID for
  # the data plane too.
  storage_use_azuread = true
}

resource "azurerm_resource_group" "stratus" {
  name     = "stratus"
  location = var.location
}

module "stratus_azure" {
  source = "../.."

  resource_group_name  = azurerm_resource_group.stratus.name
  location             = azurerm_resource_group.stratus.location
  storage_account_name = var.storage_account_name
  container_name       = "registry"
  root_directory       = "stratus"

  aks_oidc_issuer_url       = var.aks_oidc_issuer_url
  service_account_namespace = "stratus"
  service_account_name      = "stratus"

  tags = {
    app = "stratus"
  }
}

output "stratus_config" {
  description = "Paste into k8s/overlays/azure/stratus.yaml (storage section)."
  value       = module.stratus_azure.stratus_config
}

output "identity_client_id" {
  description = "Set as azure.workload.identity/client-id in k8s/overlays/azure/kustomization.yaml."
  value       = module.stratus_azure.identity_client_id
}

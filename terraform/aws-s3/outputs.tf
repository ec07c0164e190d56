output "bucket_name" {
  description = "Name of the bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "policy_arn" {
  description = "ARN of the IAM policy the registry needs; attach it to whatever identity runs the registry when IRSA is not used."
  value       = aws_iam_policy.driver.arn
}

output "role_arn" {
  description = "ARN of the IRSA role (annotate the service account with eks.amazonaws.com/role-arn), or null without eks_oidc_provider_arn."
  value       = one(aws_iam_role.irsa[*].arn)
}

output "stratus_config" {
  description = "The storage section of the Stratus configuration file for this bucket, as YAML."
  # jsonencode quotes each value: a JSON string is a valid YAML scalar, and
  # a bucket or prefix that looks like a number or a boolean stays a string.
  value = join("", [for line in concat(
    [
      "storage:",
      "  driver: s3",
      "  s3:",
      "    bucket: ${jsonencode(aws_s3_bucket.this.id)}",
      "    region: ${jsonencode(data.aws_region.current.name)}",
      "    root_directory: ${jsonencode(local.root)}",
      "    sse: ${jsonencode(local.kms ? "aws:kms" : "AES256")}",
    ],
    local.kms ? ["    kms_key_id: ${jsonencode(var.kms_key_arn)}"] : [],
  ) : "${line}\n"])
}
